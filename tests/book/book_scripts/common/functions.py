raise ImportError("the decoy tests/book/book_scripts/common package was imported instead of fastdl's")
