/// <reference types="vitest/config" />
import { fileURLToPath, URL } from 'node:url';
import tailwindcss from '@tailwindcss/vite';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Where `npm run dev` forwards API and WebSocket traffic: a chat-api started with its defaults.
const apiTarget = process.env.CHAT_API_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: {
    proxy: {
      '/api': { target: apiTarget, changeOrigin: true },
      '/ws': {
        target: apiTarget,
        ws: true,
        changeOrigin: true,
        // chat-api accepts WebSocket upgrades only from its own origin (PUBLIC_URL) or
        // CORS_ORIGINS. The dev server is a trusted local proxy, so it presents the API's
        // origin; a production build is served by chat-api itself and needs nothing of this.
        configure: (proxy) => {
          proxy.on('proxyReqWs', (proxyReq) => proxyReq.setHeader('origin', apiTarget));
        },
      },
    },
  },
  build: {
    sourcemap: true,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/testing/setup-tests.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
  },
});
