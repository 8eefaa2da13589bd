//! Compiles the protos with protox (pure Rust; no protoc needed) and generates the tonic
//! code. The encoded descriptor set (ssprd's protos plus the google.rpc detail messages its
//! errors carry) is saved for the reflection service.
use std::{env, path::PathBuf};

const SSPRD: [&str; 4] = [
    "proto/ssprd/v1/admin.proto",
    "proto/ssprd/v1/common.proto",
    "proto/ssprd/v1/registration.proto",
    "proto/ssprd/v1/reset.proto",
];
const DETAILS: &str = "proto/google/rpc/error_details.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for f in SSPRD.iter().chain([&DETAILS]) {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let all = protox::compile(SSPRD.iter().chain([&DETAILS]), ["proto"])?;
    std::fs::write(
        out.join("ssprd_descriptor.bin"),
        prost::Message::encode_to_vec(&all),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile(SSPRD, ["proto"])?)?;
    Ok(())
}
