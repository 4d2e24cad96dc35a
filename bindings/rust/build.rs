// Links libdzcodec: from $DZCODEC_LIB_DIR when set (a build tree), else from the linker's
// default paths (the libdzcodec-dev package puts libdzcodec.so in /usr/lib).
fn main() {
    println!("cargo:rerun-if-env-changed=DZCODEC_LIB_DIR");
    if let Ok(dir) = std::env::var("DZCODEC_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", dir);
    }
    println!("cargo:rustc-link-lib=dylib=dzcodec");
}
