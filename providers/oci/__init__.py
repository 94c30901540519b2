"""Oracle Cloud Infrastructure: bare-metal GPU shapes, capacity reservations and cluster networks via the `oci` SDK."""
