import { describe, expect, it } from 'vitest'
import { ago, formatDate, pending, wordCountLabel } from './format.js'

describe('format', () => {
  it('labels the word count, and its absence while the Celery task has not run', () => {
    expect(wordCountLabel(null)).toBe('counting words…')
    expect(wordCountLabel(undefined)).toBe('counting words…')
    expect(wordCountLabel(0)).toBe('0 words')
    expect(wordCountLabel(1)).toBe('1 word')
    expect(wordCountLabel(12)).toBe('12 words')
  })

  it('formats the API timestamps in UTC', () => {
    expect(formatDate('2026-11-23T14:05:00.123456+00:00')).toBe('23 Nov 2026, 14:05 UTC')
    expect(formatDate('2026-01-02T00:30:00+01:00')).toBe('1 Jan 2026, 23:30 UTC')
    expect(formatDate('not a date')).toBe('')
  })

  it('says how long ago the beat ran', () => {
    const now = new Date('2026-11-23T14:05:00Z')
    expect(ago(null, now)).toBe('never')
    expect(ago('2026-11-23T14:04:51Z', now)).toBe('9 s ago')
    expect(ago('2026-11-23T14:01:00Z', now)).toBe('4 min ago')
    expect(ago('2026-11-23T11:00:00Z', now)).toBe('3 h ago')
    expect(ago('2026-11-25T00:00:00Z', now)).toBe('0 s ago') // clock skew: never negative
  })

  it('keeps polling fast only while a post waits for its word count', () => {
    expect(pending([])).toBe(false)
    expect(pending([{ word_count: 3 }, { word_count: 0 }])).toBe(false)
    expect(pending([{ word_count: 3 }, { word_count: null }])).toBe(true)
  })
})
