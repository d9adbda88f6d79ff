import { createRouter, createWebHistory } from 'vue-router'
import PostList from './views/PostList.vue'
import PostDetail from './views/PostDetail.vue'
import LoginView from './views/LoginView.vue'
import NewPost from './views/NewPost.vue'
import NotFound from './views/NotFound.vue'

export const routes = [
  { path: '/', name: 'posts', component: PostList },
  // Deep links like /posts/7 reach the app because the edge answers unknown paths with
  // index.html (x-berth `static` with `spa: true`).
  { path: '/posts/:id(\\d+)', name: 'post', component: PostDetail, props: true },
  { path: '/login', name: 'login', component: LoginView },
  { path: '/new', name: 'new', component: NewPost },
  { path: '/:rest(.*)*', name: 'not-found', component: NotFound },
]

export function makeRouter(history = createWebHistory()) {
  return createRouter({ history, routes, scrollBehavior: () => ({ top: 0 }) })
}
