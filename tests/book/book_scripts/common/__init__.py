raise ImportError("the decoy tests/book_scripts/common package was imported instead of fastdl's")
