"""HMASD environments: Alice_and_Bob and the PettingZoo array adapter."""
