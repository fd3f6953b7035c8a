//! Compiles the protobuf contracts with protox, a pure-Rust compiler, so a
//! fresh machine needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tepai/v1/commands.proto",
        "proto/tepai/v1/events.proto",
        "proto/tepai/v1/envelope.proto",
        "proto/tepai/v1/query.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
