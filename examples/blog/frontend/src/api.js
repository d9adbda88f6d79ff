// The blog's JSON API (contract: examples/blog/API.md), on the same origin as the app.
// The token from /api/login is kept in localStorage and sent as `Authorization: Token <t>`.

const TOKEN_KEY = 'blog.token'
const USER_KEY = 'blog.username'

export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.name = 'ApiError'
    this.status = status
  }
}

function storage() {
  return typeof localStorage === 'undefined' ? null : localStorage
}

export function session() {
  const s = storage()
  const token = s ? s.getItem(TOKEN_KEY) : null
  return token ? { token, username: s.getItem(USER_KEY) || '' } : null
}

function saveSession(token, username) {
  const s = storage()
  if (!s) return
  s.setItem(TOKEN_KEY, token)
  s.setItem(USER_KEY, username)
}

export function logout() {
  const s = storage()
  if (!s) return
  s.removeItem(TOKEN_KEY)
  s.removeItem(USER_KEY)
}

async function request(method, path, { json, form, auth = false } = {}) {
  const headers = { Accept: 'application/json' }
  let body
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(json)
  } else if (form !== undefined) {
    body = form // the browser sets the multipart boundary
  }
  if (auth) {
    const s = session()
    if (!s) throw new ApiError(401, 'log in first')
    headers.Authorization = `Token ${s.token}`
  }
  const res = await fetch(path, { method, headers, body })
  const type = res.headers.get('Content-Type') || ''
  const data = type.includes('application/json') ? await res.json().catch(() => null) : null
  if (!res.ok) {
    const message = (data && data.error) || `${method} ${path}: HTTP ${res.status}`
    if (res.status === 401 && auth) logout() // the token is gone (e.g. a login elsewhere)
    throw new ApiError(res.status, message)
  }
  if (data === null) throw new ApiError(res.status, `${method} ${path}: the answer is not JSON`)
  return data
}

export async function login(username, password) {
  const data = await request('POST', '/api/login', { json: { username, password } })
  saveSession(data.token, data.username)
  return data
}

export const health = () => request('GET', '/api/health')
export const me = () => request('GET', '/api/me', { auth: true })
export const listPosts = () => request('GET', '/api/posts')
export const getPost = (id) => request('GET', `/api/posts/${encodeURIComponent(id)}`)
export const stats = () => request('GET', '/api/stats')

// JSON without an image; multipart/form-data with one.
export function createPost({ title, body, image }) {
  if (image) {
    const form = new FormData()
    form.append('title', title)
    form.append('body', body)
    form.append('image', image)
    return request('POST', '/api/posts', { form, auth: true })
  }
  return request('POST', '/api/posts', { json: { title, body }, auth: true })
}
