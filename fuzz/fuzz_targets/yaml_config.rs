//! Config files as users write them: any text through the loader
//! (`mesh_api::load_str`) and then validation and warnings
//! (`mesh_api::report`), as `meshctl analyze` and pilot's file source do.
//! Errors are the expected answer to bad input; a panic is a bug.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Files are read with `read_to_string`: text that is not UTF-8 never
    // reaches the loader.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (objects, errors) = mesh_api::load_str(Path::new("fuzz.yaml"), text);
    let report = mesh_api::report(&objects);
    // Rendering the errors is part of the path to the user.
    for error in errors.iter().chain(&report.errors).chain(&report.warnings) {
        let _ = error.to_string();
    }
});
