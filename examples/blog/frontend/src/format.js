// Small pure helpers for the views (unit-tested in format.test.js).

export function wordCountLabel(n) {
  if (n === null || n === undefined) return 'counting words…'
  return n === 1 ? '1 word' : `${n} words`
}

// "23 Nov 2026, 14:05" in UTC, so that server-rendered tests and browsers agree.
export function formatDate(iso) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
  const pad = (x) => String(x).padStart(2, '0')
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`
}

// "5 s ago", "3 min ago", … for the stats footer; `now` is a Date (tests pass one).
export function ago(iso, now = new Date()) {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}

// True while some post still waits for the Celery task (the list keeps polling quickly).
export function pending(posts) {
  return posts.some((p) => p.word_count === null || p.word_count === undefined)
}
