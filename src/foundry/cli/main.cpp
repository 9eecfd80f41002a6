#include <cstdio>
int main() { std::puts("foundry"); return 0; }
