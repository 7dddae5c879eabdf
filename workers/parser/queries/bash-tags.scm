; Our own tags query: tree-sitter-bash ships none. Functions, with the comment lines right above
; them as their doc.
(
  (comment)* @doc
  .
  (function_definition
    name: (word) @name) @definition.function
  (#strip! @doc "^#\\s?")
  (#select-adjacent! @doc @definition.function)
)
