//! Short stable keys (the first bytes of a blake3 hash) that let a run remember many inputs
//! compactly: shard assignment, output clashes, resume, kept stack rows.

/// An 8-byte key of `bytes`.
pub fn key64(bytes: &[u8]) -> u64 {
    let hash = blake3::hash(bytes);
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
}

/// A 16-byte key of `bytes` (for sets whose false matches must be out of the question).
pub fn key128(bytes: &[u8]) -> u128 {
    let hash = blake3::hash(bytes);
    u128::from_le_bytes(hash.as_bytes()[..16].try_into().unwrap_or_default())
}
