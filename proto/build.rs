//! Compiles the protos with protox (pure Rust; no protoc needed) and generates the tonic
//! code. The encoded descriptor set is saved for the reflection service.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/ssprd/v1/common.proto",
        "proto/ssprd/v1/registration.proto",
        "proto/ssprd/v1/reset.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("ssprd_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
