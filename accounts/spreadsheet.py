"""CSV cells that spreadsheet programs will not run as formulas."""


def csv_safe(value) -> str:
    """Prefix a cell that starts like a formula (= + - @ tab CR) with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
