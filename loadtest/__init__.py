"""Load tests of `leafdoc serve`: the locustfile, the runner that measures several serving setups, the nginx
load balancer they use, and raw ONNX Runtime throughput for comparison. See the README's "Load tests"."""
