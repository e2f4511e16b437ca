"""Medians over rounds and the one Markdown table writer every benchmark kind uses."""
import statistics


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(vals):
    """Median, range and count of a metric's values over rounds (None for no values)."""
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def medians(res, keys, value):
    """{server: {key: summary}} where value(round, key) is a round's figure (None: none)."""
    out = {}
    for s, d in res["servers"].items():
        out[s] = {}
        for key in keys:
            m = summarize([v for r in d["rounds"] if (v := value(r, key)) is not None])
            if m:
                out[s][key] = m
    return out


def cell(m, f=fmt):
    if not m:
        return "–"
    if m["n"] > 1 and m["min"] != m["max"]:
        return f"{f(m['median'])} ({f(m['min'])}–{f(m['max'])})"
    return f(m["median"])


def markdown_table(names, meds, rows, ratio=False, ratio_ok=lambda key: True, fmt_of=lambda key: fmt):
    """rows: (key, label, unit, better) with better "higher", "lower" or "-". With ratio, a last
    column names[0]/names[1] of the medians, where better is not "-" and ratio_ok(key)."""
    head = "| metric | " + " | ".join(names) + (f" | {names[0]}/{names[1]} |" if ratio else " |")
    lines = [head, "|" + "---|" * (len(names) + 1 + (1 if ratio else 0))]
    for key, label, unit, better in rows:
        cells = [cell(meds.get(n, {}).get(key), fmt_of(key)) for n in names]
        if all(c == "–" for c in cells):
            continue
        row = (f"| {label}" + (f" [{unit}]" if unit else "") + ("" if better == "-" else f", {better} is better")
               + " | " + " | ".join(cells))
        if ratio:
            a, b = meds.get(names[0], {}).get(key), meds.get(names[1], {}).get(key)
            row += " | " + (f"{a['median'] / b['median']:.2f}"
                            if better != "-" and ratio_ok(key) and a and b and b["median"] else "")
        lines.append(row + " |")
    return "\n".join(lines)
