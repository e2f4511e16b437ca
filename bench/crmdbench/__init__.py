"""The crmd benchmark package: bench/run is its command line (see bench/README.md)."""
