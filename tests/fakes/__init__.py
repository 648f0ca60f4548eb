"""Local fake servers that speak the real services' wire formats (real HTTP on 127.0.0.1).

The SDK clients under test are always the real ones, pointed here by base URL.
"""
