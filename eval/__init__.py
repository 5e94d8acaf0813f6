"""prift.eval: benchmarks, generation backends, metrics, reports."""
