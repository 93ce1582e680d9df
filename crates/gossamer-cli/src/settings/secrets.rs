//! The cluster secret: a fresh one for `gossamer keygen` and the demo.

/// A fresh cluster secret: 32 bytes from the OS random generator as 64 hex digits, what `secret`
/// takes (`gossamer keygen` prints it; the demo seals its nodes with one).
pub fn new_secret_hex() -> Result<String, rand_core::OsError> {
    use rand_core::TryRngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::OsRng.try_fill_bytes(bytes.as_mut())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
