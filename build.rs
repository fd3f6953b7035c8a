//! Compiles the protobuf contracts with protox, a pure-Rust compiler, so a
//! fresh machine needs no `protoc`, and generates their proto3 JSON mapping
//! (pbjson) for HTTP and the CLI, with the protobuf field names.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tepai/v1/commands.proto",
        "proto/tepai/v1/events.proto",
        "proto/tepai/v1/envelope.proto",
        "proto/tepai/v1/query.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    let encoded = descriptors.encode_to_vec();
    prost_build::Config::new().compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".tepai.v1"])?;
    Ok(())
}
