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
mod robust;
mod sign;
mod store;
mod tls;
mod tool;
mod x509;
