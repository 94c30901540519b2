"""Local stand-ins for the four clouds' APIs: finite capacity, the clouds' own errors, fault injection."""
