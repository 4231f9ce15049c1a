"""airspeed velocity (asv) benchmarks of fastdl. See README.md, section Benchmarks."""
