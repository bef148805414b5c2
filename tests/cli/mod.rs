//! The CLI scenarios, one file per feature: key loading (`pkey`), `storeutl`, signing
//! (`dgst`/`pkeyutl`), PIN sources and error handling.

mod badinput;
mod errors;
mod faults;
mod load;
mod pemuri;
mod pin;
mod programs;
mod prompt;
mod restricted;
mod robust;
mod search;
mod sign;
mod store;
mod text;
mod tls;
mod x509;
