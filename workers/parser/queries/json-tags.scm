; Our own tags query: tree-sitter-json ships none. The keys of the top-level object, so an outline
; of package.json or tsconfig.json lists its sections.
(document
  (object
    (pair
      key: (string (string_content) @name)) @definition.key))
