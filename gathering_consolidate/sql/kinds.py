"""The slot kinds of the SQL classifier, importable without sqlglot (which costs start-up time
on every audit run, also warm ones that never classify anything)."""

IDENTIFIER = "identifier"
SET_CLAUSE = "set_clause"
WHERE_FRAGMENT = "where_fragment"
VALUE = "value"
ORDER_OR_LIMIT = "order_or_limit"
OTHER = "other"
KINDS = (IDENTIFIER, SET_CLAUSE, WHERE_FRAGMENT, VALUE, ORDER_OR_LIMIT, OTHER)
