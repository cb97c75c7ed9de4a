//! Compiles `proto/wenda/v1/wenda.proto` with a vendored protoc, writes the
//! descriptor set that gRPC server reflection serves, and generates the
//! proto3 JSON mapping of its messages for the HTTP API.

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
    // serde for the same messages in the proto3 JSON mapping (camelCase
    // names, enums by name, 64-bit integers as strings): the HTTP API's
    // bodies, from the one proto.
    let descriptors = std::fs::read(out_dir.join("wenda_descriptor.bin"))?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".wenda.v1"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
