import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// In production the edge serves the built files and proxies /api, /admin, /static and /media to
// the backend and the volumes on the same origin. For `npm run dev` / `npm run preview`, the same
// paths go to BLOG_BACKEND (a Django `runserver`, or a deployed stack).
const backend = process.env.BLOG_BACKEND || 'http://127.0.0.1:8000'
const proxy = Object.fromEntries(
  ['/api', '/admin', '/static', '/media'].map((p) => [p, { target: backend, changeOrigin: false }]),
)

export default defineConfig({
  plugins: [vue()],
  server: { proxy },
  preview: { proxy },
  build: { sourcemap: false, assetsInlineLimit: 0 },
  test: { environment: 'node', include: ['src/**/*.test.js'] },
})
