"""The semantic layer under every family and codemod: how Python binds names, read from the
`ast` of one file, with nothing project-wide. Families, the index and the codemods build on it;
it imports nothing else of this package.

* `imports`: the import table of a file (plain, `from`, relative, aliased; star imports are
  left to the cross-file analyses), the package a module's relative imports start from, dotted
  names.
"""
