"""The semantic layer under every family and codemod: how Python binds names. It imports
nothing else of this package; families, the index and the codemods build on it.

Per file (the `ast` of one module, nothing project-wide):

* `context`: `ParsedModule`, the parsed file with its node index, parents, enclosing symbols,
  import table and qualified names;
* `imports`: the import table of a file (plain, `from`, relative, aliased; star imports are
  left to the cross-file model), the package a module's relative imports start from, dotted
  names;
* `annotations`: what an annotation promises (containers, optionals, literals);
* `frameworks`: FastAPI routes, middleware, tasks, handed callables, script guards.

Across files:

* `project`: `ProjectModel`, the project-wide symbol table and the one name resolution, member
  lookup and MRO that the exception flow (`audit/exceptions/flow.py` `World`), the call graph
  (`index/graph.py` `Index`) and the SQL family's model classes (`sql/origins.py` `ClassIndex`)
  are built on.
"""
