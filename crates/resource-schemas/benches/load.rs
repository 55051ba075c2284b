//! How long loading the shipped schema data takes: the startup load (decompress + shallow
//! parse) and parsing every type's property schemas. Run with `cargo bench -p resource-schemas`.

use std::time::{Duration, Instant};

use resource_schemas::Registry;

fn measure(runs: u32, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let t = Instant::now();
        f();
        let d = t.elapsed();
        best = best.min(d);
        total += d;
    }
    (best, total / runs)
}

fn main() {
    let (best, mean) = measure(10, || {
        let r = Registry::embedded().expect("embedded data loads");
        assert!(r.len() > 1800);
    });
    println!(
        "startup load (decompress + index {} types): best {best:?}, mean {mean:?}",
        Registry::embedded().map(|r| r.len()).unwrap_or(0)
    );
    let (best, mean) = measure(5, || {
        let r = Registry::embedded().expect("embedded data loads");
        let props: usize = r.types().map(|t| t.properties().len()).sum();
        assert!(props > 10_000);
    });
    println!("full load (every property schema parsed): best {best:?}, mean {mean:?}");
}
