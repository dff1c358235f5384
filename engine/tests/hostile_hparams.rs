//! Hyperparameters a hostile file states are checked against what the file holds before
//! anything is sized by them (found by `scripts/fuzz.sh gguf`: a mutated block_count of
//! 16.5 M made the loader reserve gigabytes and abort).

use tessera_engine::Model;
use tessera_engine::gguf::GgufFile;
use tessera_engine::synth::{Preset, SynthSpec, write_to};
use tessera_kernels::GgmlType;

#[test]
fn a_block_count_beyond_the_files_tensors_is_an_error_not_an_allocation() {
    let mut bytes = Vec::new();
    write_to(&mut bytes, &SynthSpec::new(Preset::Tiny, GgmlType::Q4_0, 1)).unwrap();
    // "llama.block_count", then the value type (4 = u32) and the value.
    let key = b"llama.block_count";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the key is in the file")
        + key.len();
    assert_eq!(&bytes[at..at + 4], &4u32.to_le_bytes());
    bytes[at + 4..at + 8].copy_from_slice(&0x00FD_0001u32.to_le_bytes());
    let f = GgufFile::from_bytes(bytes).unwrap();
    let e = Model::from_gguf(&f).unwrap_err().to_string();
    assert!(
        e.contains("block_count 16580609") && e.contains("holds only"),
        "{e}"
    );
}
