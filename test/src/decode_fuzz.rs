//! Damaged input for the two decoders a user feeds files to: images ([`Image::decode`]) and `.aot`
//! files ([`AotFile::decode`]). Each case mutates a valid file (bits flipped, bytes overwritten
//! with lengths that lie, bytes inserted or cut), and most cases then reseal it with a correct
//! checksum so that the body decoder, not only the checksum, meets the damage. A decoder must
//! answer every case with a value or an error: a panic is a failure, and an allocation the input
//! cannot back aborts the process, which fails the run.

use arbitrary::Unstructured;
use mvvm_checkpoint::Image;
use mvvm_contract::container::AotFile;
use mvvm_contract::sealed::{self, HEADER_LEN};

/// The valid files the mutations start from.
pub struct Seeds {
    /// An image of a guest stopped mid-run, plain.
    pub image: Vec<u8>,
    /// The same image, zstd-compressed.
    pub image_zstd: Vec<u8>,
    /// An `.aot` file.
    pub aot: Vec<u8>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Cases a decoder accepted (the damage left a valid file).
    pub accepted: u64,
    /// Cases a decoder refused with an error.
    pub refused: u64,
    /// Cases that panicked, by seed, with the panic's message.
    pub panics: Vec<(u64, String)>,
}

/// Runs cases `first..first + count` on `seeds`.
pub fn run(seeds: &Seeds, first: u64, count: u64) -> Tally {
    let mut tally = Tally::default();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for seed in first..first + count {
        let outcome = std::panic::catch_unwind(|| case(seeds, seed));
        tally.cases += 1;
        match outcome {
            Ok(true) => tally.accepted += 1,
            Ok(false) => tally.refused += 1,
            Err(p) => {
                let message = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tally.panics.push((seed, message));
            }
        }
    }
    std::panic::set_hook(previous);
    tally
}

/// One case: whether the decoder accepted the mutated file.
fn case(seeds: &Seeds, seed: u64) -> bool {
    let noise = noise(seed);
    let mut u = Unstructured::new(&noise);
    let which = u.int_in_range(0..=2u8).unwrap_or(0);
    let (file, magic, version) = match which {
        0 => (
            &seeds.image,
            mvvm_checkpoint::image::MAGIC,
            mvvm_checkpoint::image::VERSION,
        ),
        1 => (
            &seeds.image_zstd,
            mvvm_checkpoint::image::MAGIC,
            mvvm_checkpoint::image::VERSION,
        ),
        _ => (
            &seeds.aot,
            mvvm_contract::container::MAGIC,
            mvvm_contract::container::VERSION,
        ),
    };
    let mut bytes = file.clone();
    let mutations = u.int_in_range(1..=4u8).unwrap_or(1);
    for _ in 0..mutations {
        mutate(&mut u, &mut bytes);
    }
    // Most cases get a correct seal, so that the body decoder sees the damage.
    if u.ratio(7u8, 8u8).unwrap_or(true) && bytes.len() >= HEADER_LEN {
        bytes = sealed::seal(magic, version, &bytes[HEADER_LEN..]);
    }
    match which {
        0 | 1 => Image::decode("fuzz.ckpt", &bytes).is_ok(),
        _ => AotFile::decode("fuzz.aot", &bytes).is_ok(),
    }
}

/// One mutation of `bytes`, chosen by `u`.
fn mutate(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let at = u.choose_index(bytes.len()).unwrap_or(0);
    match u.int_in_range(0..=4u8).unwrap_or(0) {
        0 => bytes[at] ^= 1 << u.int_in_range(0..=7u8).unwrap_or(0),
        1 => bytes[at] = u.arbitrary().unwrap_or(0),
        // A length that lies: bincode's varint prefixes for 2^16, 2^32 and 2^64 values.
        2 => {
            let lie: &[u8] = match u.int_in_range(0..=2u8).unwrap_or(0) {
                0 => &[0xfb, 0xff, 0xff],
                1 => &[0xfc, 0xff, 0xff, 0xff, 0x7f],
                _ => &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10],
            };
            let end = (at + lie.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&lie[..end - at]);
        }
        3 => {
            let extra: Vec<u8> = (0..u.int_in_range(1..=16usize).unwrap_or(1))
                .map(|_| u.arbitrary().unwrap_or(0))
                .collect();
            bytes.splice(at..at, extra);
        }
        _ => {
            let end = (at + u.int_in_range(1..=64usize).unwrap_or(1)).min(bytes.len());
            bytes.drain(at..end);
        }
    }
}

/// Deterministic bytes for case `seed` (xorshift64*).
fn noise(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..64)
        .flat_map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
        })
        .collect()
}

/// The seeds: an image of the demo guest `p` stopped at its 40th poll (plain and compressed), and
/// its `.aot` for pulley64.
pub fn seeds() -> Seeds {
    use mvvm_runtime::{Isa, Outcome, Trigger};
    let guest = crate::all_guests()
        .into_iter()
        .find(|g| g.name == "p")
        .expect("the p guest");
    let wasm = guest.wasm();
    let policy = crate::dense_policy();
    let program = crate::program(&wasm, &policy, Isa::Native);
    let (cfg, _, _) = guest.config(None);
    let run = program.run(&cfg, Trigger::Poll(40)).expect("run p");
    let Outcome::Checkpointed(snapshot) = run.outcome else {
        panic!("p did not stop at its 40th poll");
    };
    let image = Image {
        producer: "decode-fuzz".into(),
        taken_on: "x86_64-unknown-linux-gnu".into(),
        snapshot: (*snapshot).clone(),
    };
    let aot = mvvm_aot::build::build(
        &wasm,
        &policy,
        &[mvvm_contract::Target::Pulley64],
        &mvvm_contract::EngineOptions::default(),
    )
    .expect("build p");
    Seeds {
        image: image.encode(None).expect("encode"),
        image_zstd: image.encode(Some(3)).expect("encode"),
        aot: aot.encode(),
    }
}
