// Line diff (longest common subsequence) laid out side by side.

/** Edit script of two line arrays: {op: 'same'|'del'|'add', a, b} items. */
export function diffLines(a, b) {
  const n = a.length, m = b.length;
  if (n * m > 4_000_000) {
    // Too large to compare line by line: everything changed.
    return [...a.map(x => ({ op: 'del', a: x })), ...b.map(x => ({ op: 'add', b: x }))];
  }
  // lcs[i][j]: LCS length of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: 'same', a: a[i++], b: b[j++] }); }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push({ op: 'del', a: a[i++] }); }
    else { out.push({ op: 'add', b: b[j++] }); }
  }
  while (i < n) out.push({ op: 'del', a: a[i++] });
  while (j < m) out.push({ op: 'add', b: b[j++] });
  return out;
}

/** Side-by-side rows: {left, right, leftNo, rightNo, kind} where kind is
 *  'same', 'changed' (both sides), 'del' (left only) or 'add' (right only). */
export function sideBySide(aText, bText) {
  const a = aText.split('\n'), b = bText.split('\n');
  const ops = diffLines(a, b);
  const rows = [];
  let ln = 0, rn = 0;
  for (let k = 0; k < ops.length;) {
    if (ops[k].op === 'same') {
      rows.push({ left: ops[k].a, right: ops[k].b, leftNo: ++ln, rightNo: ++rn, kind: 'same' });
      k++;
      continue;
    }
    const dels = [], adds = [];
    while (k < ops.length && ops[k].op !== 'same') {
      if (ops[k].op === 'del') dels.push(ops[k].a); else adds.push(ops[k].b);
      k++;
    }
    for (let x = 0; x < Math.max(dels.length, adds.length); x++) {
      const l = x < dels.length ? dels[x] : null, r = x < adds.length ? adds[x] : null;
      rows.push({
        left: l, right: r,
        leftNo: l === null ? null : ++ln, rightNo: r === null ? null : ++rn,
        kind: l !== null && r !== null ? 'changed' : (l !== null ? 'del' : 'add'),
      });
    }
  }
  return rows;
}
