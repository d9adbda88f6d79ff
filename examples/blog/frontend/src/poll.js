import { onBeforeUnmount, onMounted } from 'vue'

// Calls `load` on mount and again after `delay()` milliseconds (re-read each time, so a view can
// poll fast while it waits for the Celery task and slowly otherwise) until the component unmounts.
// A failed load is retried after the same delay; errors are the view's to show.
export function usePoll(load, delay) {
  let timer = null
  let stopped = false
  async function tick() {
    timer = null
    try {
      await load()
    } finally {
      if (!stopped) timer = setTimeout(tick, delay())
    }
  }
  onMounted(tick)
  onBeforeUnmount(() => {
    stopped = true
    if (timer) clearTimeout(timer)
  })
  return {
    // Load now (e.g. after creating a post) instead of waiting for the timer.
    refresh() {
      if (stopped) return
      if (timer) clearTimeout(timer)
      tick()
    },
  }
}
