import { reactive } from 'vue'
import * as api from './api.js'

// Who is logged in, shared by the header, the login form and the create form.
export const auth = reactive({ username: api.session()?.username || null })

export async function login(username, password) {
  const data = await api.login(username, password)
  auth.username = data.username
}

export function logout() {
  api.logout()
  auth.username = null
}

// After an API answer 401 the token is gone: forget who we were.
export function forgetIfLoggedOut() {
  if (!api.session()) auth.username = null
}
