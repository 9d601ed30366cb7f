//! The `kho` command-line tool.
fn main() {
    println!("kho");
}
