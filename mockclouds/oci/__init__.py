"""A small fake of Oracle Cloud Infrastructure's Core Services, Identity and Limits REST APIs, for the `oci` SDK."""
