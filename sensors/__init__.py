"""The pure core: site model, message formats and typed events. No I/O beyond reading a site file."""
