"""`make bench`: every benchmark, each printing ratios against its own baseline."""

from bench import bench_api, bench_reconcile, bench_signon, bench_sync

bench_api.run()
bench_signon.run()
bench_sync.run(workers=4, transfers=400, latency_ms=20)
bench_reconcile.run(wallets=100_000, transfers=1_000_000)
