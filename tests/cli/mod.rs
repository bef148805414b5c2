//! The CLI scenarios, one file per feature: key loading (`pkey`), `storeutl`, signing
//! (`dgst`/`pkeyutl`), PIN sources and error handling, installing (`package`) and the
//! `pkcs11-ossl` helper command (`tool`), key generation (`keygen`), RSA decryption
//! (`decrypt`) and ECDH (`derive`).

mod async_;
mod badinput;
mod decrypt;
mod derive;
mod errors;
mod faults;
mod keygen;
mod load;
mod package;
mod pemuri;
mod pin;
mod programs;
mod prompt;
mod remote;
mod restricted;
mod robust;
mod search;
mod sign;
mod store;
mod text;
mod tls;
mod tool;
mod verify;
mod x509;
