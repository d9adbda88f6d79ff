// Renders the real component with Vue's server renderer (no DOM emulation needed) inside a real
// router, as the list shows it before and after the Celery task filled the word count.
import { describe, expect, it } from 'vitest'
import { createSSRApp, h } from 'vue'
import { renderToString } from 'vue/server-renderer'
import { createMemoryHistory } from 'vue-router'
import { makeRouter } from '../router.js'
import PostCard from './PostCard.vue'

async function render(post) {
  const router = makeRouter(createMemoryHistory())
  const app = createSSRApp({ render: () => h(PostCard, { post }) }).use(router)
  await router.push('/')
  await router.isReady()
  return renderToString(app)
}

const post = {
  id: 7,
  title: 'Hello <world>',
  body: 'First post',
  author: 'admin',
  created: '2026-11-23T14:05:00.123456+00:00',
  image_url: null,
  word_count: null,
}

describe('PostCard', () => {
  it('links to the deep link of the post and escapes its title', async () => {
    const html = await render(post)
    expect(html).toContain('href="/posts/7"')
    expect(html).toContain('Hello &lt;world&gt;')
    expect(html).toContain('data-post-id="7"')
    expect(html).toContain('by admin · 23 Nov 2026, 14:05 UTC')
  })

  it('shows that the word count is pending until the task ran, then the count', async () => {
    const before = await render(post)
    expect(before).toContain('counting words…')
    expect(before).toMatch(/class="[^"]*\bpending\b[^"]*" data-testid="word-count"/)
    const after = await render({ ...post, word_count: 2 })
    expect(after).toContain('2 words')
    expect(after).not.toContain('pending')
  })

  it('shows the uploaded image from /media only when there is one', async () => {
    expect(await render(post)).not.toContain('<img')
    const html = await render({ ...post, image_url: '/media/posts/cat.png' })
    expect(html).toContain('<img class="thumb" src="/media/posts/cat.png"')
  })
})
