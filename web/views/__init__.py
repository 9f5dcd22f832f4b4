"""Request handlers, one module per area. Each registers its routes through ``routes``."""
