//! Direct `C_GetMechanismList` and `C_GetAttributeValue` calls for values cryptoki cannot
//! represent: cryptoki 0.12 drops mechanism numbers it has no name for from
//! `get_mechanism_list`, and fails a whole `get_attributes` call when `CKA_ALLOWED_MECHANISMS`
//! holds one (`CKM_SHA224_RSA_PKCS_PSS`, `CKM_ECDSA_SHA224`, `CKM_SHA3_*`, vendor values). Here
//! mechanism numbers stay plain `CK_MECHANISM_TYPE` values.

use cryptoki::context::Function;
use cryptoki::error::{Rv, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_ATTRIBUTE_PTR, CK_ATTRIBUTE_TYPE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV,
    CK_SESSION_HANDLE, CK_SLOT_ID, CK_ULONG, CK_ULONG_PTR, CK_UNAVAILABLE_INFORMATION,
};

use super::pkcs11::loaded_function_list;
use crate::error::{Error, Result};

/// Most mechanisms a token may report; a longer list is treated as unavailable.
const MAX_MECHANISMS: usize = 4096;

/// The module's own `C_GetMechanismList` and `C_GetAttributeValue`.
pub(crate) struct QueryFunctions {
    get_mechanism_list:
        unsafe extern "C" fn(CK_SLOT_ID, *mut CK_MECHANISM_TYPE, CK_ULONG_PTR) -> CK_RV,
    get_attribute_value: unsafe extern "C" fn(
        CK_SESSION_HANDLE,
        CK_OBJECT_HANDLE,
        CK_ATTRIBUTE_PTR,
        CK_ULONG,
    ) -> CK_RV,
}

impl QueryFunctions {
    /// The entry points of the module at `path`, which cryptoki has already loaded.
    pub(crate) fn of_loaded_module(path: &str) -> Result<QueryFunctions> {
        let missing = |what: &str| Error::Module(format!("{path}: {what}"));
        let list = loaded_function_list(path)?;
        Ok(QueryFunctions {
            get_mechanism_list: list
                .C_GetMechanismList
                .ok_or_else(|| missing("no C_GetMechanismList"))?,
            get_attribute_value: list
                .C_GetAttributeValue
                .ok_or_else(|| missing("no C_GetAttributeValue"))?,
        })
    }

    /// Every mechanism number the token in `slot` reports (PKCS#11 3.0 §5.5
    /// `C_GetMechanismList`), unknown ones included.
    pub(crate) fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
        let mut count: CK_ULONG = 0;
        // SAFETY: a NULL list asks only for the count, written into `count`.
        let rv = unsafe { (self.get_mechanism_list)(slot, std::ptr::null_mut(), &mut count) };
        Rv::from(rv).into_result(Function::GetMechanismList)?;
        for _attempt in 0..2 {
            let len = usize::try_from(count)
                .ok()
                .filter(|n| *n <= MAX_MECHANISMS)
                .ok_or_else(|| Error::Module(format!("token reports {count} mechanisms")))?;
            let mut list: Vec<CK_MECHANISM_TYPE> = vec![0; len];
            let mut written = count;
            // SAFETY: `list` has room for `written` mechanism numbers; the module writes at
            // most that many and stores the number it wrote (or needs) in `written`.
            let rv = unsafe { (self.get_mechanism_list)(slot, list.as_mut_ptr(), &mut written) };
            match Rv::from(rv) {
                Rv::Ok => {
                    list.truncate(usize::try_from(written).unwrap_or(0).min(len));
                    return Ok(list);
                }
                // The list grew between the two calls: ask again with the new size.
                Rv::Error(RvError::BufferTooSmall) => count = written,
                other => other.into_result(Function::GetMechanismList)?,
            }
        }
        Err(Error::Module(
            "C_GetMechanismList returned inconsistent lengths".into(),
        ))
    }

    /// An attribute whose value is an array of `CK_ULONG`s (such as `CKA_ALLOWED_MECHANISMS`),
    /// or `None` when the object does not have it or keeps it hidden.
    pub(crate) fn ulong_array_attribute(
        &self,
        session: &Session,
        object: ObjectHandle,
        attribute: CK_ATTRIBUTE_TYPE,
    ) -> Result<Option<Vec<CK_ULONG>>> {
        let unit = size_of::<CK_ULONG>();
        let mut template = CK_ATTRIBUTE {
            type_: attribute,
            pValue: std::ptr::null_mut(),
            ulValueLen: 0,
        };
        // SAFETY: one attribute with a NULL value asks for its length only.
        let rv = unsafe {
            (self.get_attribute_value)(session.handle(), object.handle(), &mut template, 1)
        };
        match Rv::from(rv) {
            Rv::Ok => {}
            Rv::Error(RvError::AttributeTypeInvalid | RvError::AttributeSensitive) => {
                return Ok(None);
            }
            other => other.into_result(Function::GetAttributeValue)?,
        }
        if template.ulValueLen == CK_UNAVAILABLE_INFORMATION {
            return Ok(None);
        }
        let bytes = usize::try_from(template.ulValueLen).unwrap_or(usize::MAX);
        if bytes % unit != 0 || bytes / unit > MAX_MECHANISMS {
            return Err(Error::Module(format!(
                "attribute {attribute:#x} has a length of {bytes} bytes, not a list of numbers"
            )));
        }
        let mut values: Vec<CK_ULONG> = vec![0; bytes / unit];
        template.pValue = values.as_mut_ptr().cast();
        // SAFETY: pValue points at `values`, writable for ulValueLen bytes (its whole length),
        // and stays alive across the call.
        let rv = unsafe {
            (self.get_attribute_value)(session.handle(), object.handle(), &mut template, 1)
        };
        match Rv::from(rv) {
            Rv::Ok if template.ulValueLen != CK_UNAVAILABLE_INFORMATION => {
                let written = usize::try_from(template.ulValueLen).unwrap_or(0) / unit;
                values.truncate(written);
                Ok(Some(values))
            }
            Rv::Ok => Ok(None),
            Rv::Error(RvError::AttributeTypeInvalid | RvError::AttributeSensitive) => Ok(None),
            other => {
                other.into_result(Function::GetAttributeValue)?;
                Ok(None)
            }
        }
    }
}
