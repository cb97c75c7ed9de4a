//! Compiles `proto/wenda/v1/wenda.proto` with a vendored protoc, and writes the
//! descriptor set that gRPC server reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("wenda_descriptor.bin"))
        // prost's codec, with undecodable requests as INVALID_ARGUMENT.
        .codec_path("crate::grpc::codec::Codec")
        .compile_protos(&["proto/wenda/v1/wenda.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
