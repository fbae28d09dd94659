//! The `.aot` container: the instrumented module, its site table, and one precompiled wasmtime
//! artifact per target. The byte layout is documented in `contract/FORMAT.md`.

use crate::config::{EngineOptions, Target};
use crate::info::ModuleInfo;
use crate::sealed::{self, SealError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::Path;

/// First eight bytes of every `.aot` file.
pub const MAGIC: [u8; 8] = *b"MVVMAOT\0";
/// The container version this build writes and reads.
pub const VERSION: u32 = 5;

/// One precompiled artifact. Its bytes are borrowed from the file's bytes when decoded with
/// [`AotFile::decode`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Artifact<'a> {
    /// The target it was compiled for.
    pub target: Target,
    /// `wasmtime::Engine::precompile_module` output.
    #[serde(with = "serde_bytes", borrow)]
    pub bytes: Cow<'a, [u8]>,
}

/// The decoded contents of an `.aot` file. [`AotFile::decode`] borrows the module and the
/// artifacts from the bytes it decodes (a loader needs one artifact, which wasmtime copies into
/// executable memory anyway); [`AotFile::read`] and `mvvm_aot::build::build` give an owned
/// `AotFile<'static>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AotFile<'a> {
    /// The mvvm version that wrote it.
    pub producer: String,
    /// SHA-256 of [`AotFile::wasm`]; images record it to refuse a mismatched module.
    pub module_hash: [u8; 32],
    /// The instrumented module (compiled on the fly for a target without an artifact).
    #[serde(with = "serde_bytes", borrow)]
    pub wasm: Cow<'a, [u8]>,
    /// Site table, function names, policy.
    pub info: ModuleInfo,
    /// Settings every artifact was compiled with.
    pub engine: EngineOptions,
    /// Precompiled artifacts.
    #[serde(borrow)]
    pub artifacts: Vec<Artifact<'a>>,
}

/// Why an `.aot` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Shorter than its header says.
    #[error("{0} is truncated ({1} of {2} bytes); rebuild it with mvvm-aot")]
    Truncated(String, usize, usize),
    /// Wrong magic.
    #[error(
        "{0} is not an mvvm .aot file (bad magic); build one with `mvvm-aot -o APP.aot APP.wasm`"
    )]
    BadMagic(String),
    /// Another container version.
    #[error(
        "{0} is .aot version {1}, this mvvm reads version {VERSION}; rebuild it with this mvvm-aot"
    )]
    Version(String, u32),
    /// Checksum mismatch.
    #[error("{0} is damaged (checksum mismatch); rebuild it with mvvm-aot")]
    Checksum(String),
    /// Body does not decode.
    #[error("{0} is damaged ({1}); rebuild it with mvvm-aot")]
    Decode(String, String),
    /// I/O.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
}

/// SHA-256 of a module.
pub fn module_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

impl<'a> AotFile<'a> {
    /// Encodes to bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("in-memory serialization of plain data cannot fail");
        sealed::seal(MAGIC, VERSION, &body)
    }

    /// Decodes bytes, borrowing the module and the artifacts from them; `name` is used in error
    /// messages.
    pub fn decode(name: &str, bytes: &'a [u8]) -> Result<AotFile<'a>, ContainerError> {
        let body = sealed::unseal(MAGIC, VERSION, bytes).map_err(|e| match e {
            SealError::BadMagic => ContainerError::BadMagic(name.into()),
            SealError::Truncated { got, need } => ContainerError::Truncated(name.into(), got, need),
            SealError::Version(v) => ContainerError::Version(name.into(), v),
            SealError::Checksum => ContainerError::Checksum(name.into()),
            e @ SealError::Trailing(_) => ContainerError::Decode(name.into(), e.to_string()),
        })?;
        let (file, used): (AotFile<'a>, usize) = sealed::decode_body(body)
            .map_err(|e| ContainerError::Decode(name.into(), e.to_string()))?;
        if used != body.len() {
            return Err(ContainerError::Decode(
                name.into(),
                format!(
                    "{} unexpected bytes after the encoded contents",
                    body.len() - used
                ),
            ));
        }
        if module_hash(&file.wasm) != file.module_hash {
            return Err(ContainerError::Checksum(name.into()));
        }
        Ok(file)
    }

    /// Reads and decodes a file.
    pub fn read(path: &Path) -> Result<AotFile<'static>, ContainerError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ContainerError::Io(name.clone(), e))?;
        Ok(AotFile::decode(&name, &bytes)?.into_owned())
    }

    /// A copy that owns its bytes.
    pub fn into_owned(self) -> AotFile<'static> {
        AotFile {
            producer: self.producer,
            module_hash: self.module_hash,
            wasm: Cow::Owned(self.wasm.into_owned()),
            info: self.info,
            engine: self.engine,
            artifacts: self
                .artifacts
                .into_iter()
                .map(|a| Artifact {
                    target: a.target,
                    bytes: Cow::Owned(a.bytes.into_owned()),
                })
                .collect(),
        }
    }

    /// The artifact for `target`, if present.
    pub fn artifact(&self, target: Target) -> Option<&Artifact<'a>> {
        self.artifacts.iter().find(|a| a.target == target)
    }

    /// The module hash as lowercase hex.
    pub fn hash_hex(&self) -> String {
        self.module_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
