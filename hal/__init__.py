"""Hardware abstraction: ports (Protocols) and their adapters."""
