use hypeflow::kafka::publish::Publisher;
use std::time::Instant;
fn main() {
    let b = std::env::args().nth(1).unwrap();
    for twice in [false, true, false, true] {
        for wait_ms in [0u64, 50, 200] {
            let t = Instant::now();
            let mut p = Publisher::immediate(&b).unwrap();
            p.warm_up("orders.intents");
            if twice {
                std::thread::sleep(std::time::Duration::from_millis(5));
                p.warm_up("orders.intents");
            }
            let w = t.elapsed();
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            let t2 = Instant::now();
            p.send_until_acked("scratch.topic", "k", b"{}", 1).unwrap();
            println!(
                "twice {twice} warm_up {:?} then sleep {wait_ms} ms, first ack {:?}",
                w,
                t2.elapsed()
            );
        }
    }
}
