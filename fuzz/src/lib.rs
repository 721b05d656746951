//! What the fuzz targets share: the framing that packs several xDS
//! resources, or a route configuration and requests, into one input.
//! Framing keeps each part a plain protobuf or text, so seeds are easy to
//! make (see `seeds/`, which writes them) and the fuzzer mutates real encodings.

/// The parts of an input made of records `kind(1) | length(2, LE) | bytes`.
/// A last record shorter than its length takes what is left; a last byte
/// or two that cannot start a record is ignored.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let [kind, lo, hi, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (bytes, after) = rest.split_at(len);
        data = after;
        Some((*kind, bytes))
    })
}
