"""The op library: one module per family, each op a Function subclass plus a public function."""
